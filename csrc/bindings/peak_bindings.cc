// Machine-peak probes (csrc/cpu/peak/). No math here.
#include <pybind11/pybind11.h>

#include "cpu/peak/fma_peak.h"

namespace aicc::bindings {

namespace py = pybind11;

void bind_peak(py::module_& m) {
  m.def(
      "peak_fma_gflops",
      [](int threads, double seconds) {
        py::gil_scoped_release release;
        return cpu::peak_fma_gflops(threads, seconds);
      },
      py::arg("threads") = 0, py::arg("seconds") = 0.2,
      "f32 FMA peak (GFLOPS) of the active ISA path, over `threads` threads (0: all) for `seconds`.");
}

}  // namespace aicc::bindings
