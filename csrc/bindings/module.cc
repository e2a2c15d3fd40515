// The _aicc_cpu extension: one module, one bind_* function per area (one file each).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "aicc/status.h"
#include "common/cpu_features.h"
#include "common/thread_pool.h"

namespace py = pybind11;

namespace aicc::bindings {
void bind_gemm(py::module_& m);
void bind_peak_probes(py::module_& m);
void bind_collective(py::module_& m);
void bind_conv(py::module_& m);
void bind_registry(py::module_& m);
void bind_c_api(py::module_& m);
}  // namespace aicc::bindings

PYBIND11_MODULE(_aicc_cpu, m) {
  m.doc() = "aicc_kernels C++ CPU kernels (called through aicc_kernels.ops; arguments are validated there)";

  // aicc_kernels.CollectiveError, raised for aicc::CollectiveError (a RuntimeError subclass).
  static py::exception<aicc::CollectiveError> collective_error(m, "CollectiveError", PyExc_RuntimeError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const aicc::InvalidArgument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const aicc::Unsupported& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    } catch (const aicc::CollectiveError& e) {
      PyErr_SetString(collective_error.ptr(), e.what());
    }
  });

  m.def("get_num_threads", &aicc::get_num_threads);
  m.def("set_num_threads", &aicc::set_num_threads, py::arg("n"));
  m.def("available_cores", &aicc::available_cores);
  m.def("max_threads", &aicc::max_threads);
  m.def("active_isa", [] { return std::string(aicc::isa_name(aicc::active_isa())); });
  m.def("detected_isa", [] { return std::string(aicc::isa_name(aicc::detected_isa())); });
  m.def("set_isa", [](const std::string& name) { aicc::set_isa(aicc::isa_from_name(name)); },
        py::arg("name"));
  m.def("build_info", [] {
    py::dict d;
    d["version"] = AICC_VERSION;
    d["build_type"] = AICC_BUILD_TYPE;
    d["sanitizers"] = static_cast<bool>(AICC_SANITIZE_BUILD);
#if defined(__clang__)
    d["compiler"] = "clang " __clang_version__;
#elif defined(__GNUC__)
    d["compiler"] = "gcc " __VERSION__;
#endif
    return d;
  });

  aicc::bindings::bind_gemm(m);
  aicc::bindings::bind_peak_probes(m);
  aicc::bindings::bind_collective(m);
  aicc::bindings::bind_conv(m);
  aicc::bindings::bind_registry(m);
  aicc::bindings::bind_c_api(m);
}
