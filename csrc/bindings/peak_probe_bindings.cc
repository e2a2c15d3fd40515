// Peak-probe glue: runs a probe with the GIL released, returns its timings as a dict.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "cpu/peak/peak_probes.h"

namespace py = pybind11;

namespace aicc::bindings {

namespace {
py::dict to_dict(const peak::ProbeResult& r) {
  py::dict d;
  d["work"] = r.work;
  d["seconds"] = r.seconds;
  d["cpu_seconds"] = r.cpu_seconds;
  d["threads_used"] = r.threads_used;
  d["path"] = r.path;
  return d;
}

// One compute probe: (threads, seconds, repeats) -> dict, the GIL released while it runs.
void bind_compute_probe(py::module_& m, const char* name, peak::ProbeResult (*probe)(int, double, int),
                        const char* doc) {
  m.def(
      name,
      [probe](int threads, double seconds, int repeats) {
        peak::ProbeResult r;
        {
          py::gil_scoped_release release;
          r = probe(threads, seconds, repeats);
        }
        return to_dict(r);
      },
      py::arg("threads"), py::arg("seconds"), py::arg("repeats"), doc);
}
}  // namespace

void bind_peak_probes(py::module_& m) {
  bind_compute_probe(m, "peak_probe_fp32_fma", &peak::fp32_fma,
                     "f32 FMA peak: FLOPs per run ('work') and the wall time of each run");
  bind_compute_probe(m, "peak_probe_bf16_dot", &peak::bf16_dot,
                     "bf16 peak of the kernel bf16 GEMMs use now (vdpbf16ps, else the f32 FMA loop): FLOPs per run "
                     "and run times");
  bind_compute_probe(m, "peak_probe_int8_madd", &peak::int8_madd,
                     "INT8 multiply-add peak of the route the INT8 GEMM uses now: integer ops per run and run times");
  m.def(
      "peak_probe_membw",
      [](int threads, int64_t bytes_per_array, int repeats) {
        peak::MemBwResult r;
        {
          py::gil_scoped_release release;
          r = peak::memory_bandwidth(threads, bytes_per_array, repeats);
        }
        py::dict d;
        d["copy"] = to_dict(r.copy);
        d["triad"] = to_dict(r.triad);
        return d;
      },
      py::arg("threads"), py::arg("bytes_per_array"), py::arg("repeats"),
      "STREAM copy and triad: bytes per run and run times");
}

}  // namespace aicc::bindings
