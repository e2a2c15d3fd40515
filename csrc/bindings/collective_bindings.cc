// Collective glue: communicators (shm / thread) and the reduction kernels the MPI
// communicator uses. Arrays arrive validated and contiguous from python/aicc_kernels/ops;
// the checks here protect C++-level misuse. GIL released around every wait and kernel.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <vector>

#include "aicc/collective.h"
#include "bindings/array_view.h"
#include "cpu/reduce/reduce.h"

namespace aicc::bindings {

namespace {

using collective::Communicator;
using collective::Compression;
using collective::Options;
using collective::ReduceOp;

struct Flat {
  void* data;
  DType dtype;
  int64_t count;
};

// dtype_of identifies bfloat16 by its name, which costs a few microseconds per array; the
// MPI path calls these kernels per message, so recognize the (singleton) dtype object first.
DType fast_dtype_of(const py::array& arr, const char* name) {
  static PyObject* bf16 = [] {
    try {
      py::object dt = py::module_::import("numpy").attr("dtype")(py::module_::import("ml_dtypes").attr("bfloat16"));
      return dt.release().ptr();
    } catch (const py::error_already_set&) {
      return static_cast<PyObject*>(nullptr);
    }
  }();
  PyObject* dt = reinterpret_cast<PyObject*>(py::detail::array_proxy(arr.ptr())->descr);
  if (bf16 != nullptr && dt == bf16) return DType::kBF16;
  return dtype_of(arr, name);
}

Flat flat(const py::array& arr, const char* name, bool writeable = false) {
  if (writeable && !arr.writeable()) throw_invalid(name, "a writeable array", "a read-only array");
  if (!(arr.flags() & py::array::c_style)) throw_invalid(name, "a C-contiguous array", "a strided array");
  return Flat{const_cast<void*>(arr.data()), fast_dtype_of(arr, name), static_cast<int64_t>(arr.size())};
}

// The input's shape, for the cross-rank comparison (pybind11's shape() is a pointer into
// the array object, valid while `arr` lives: for the whole call).
collective::Shape shape_of(const py::array& arr) {
  static_assert(sizeof(py::ssize_t) == sizeof(int64_t), "dims are passed as int64_t");
  return collective::Shape{static_cast<int>(arr.ndim()), reinterpret_cast<const int64_t*>(arr.shape())};
}

Options options(double timeout, int64_t slot_bytes, int64_t oneshot_bytes) {
  Options o;
  if (!(timeout > 0)) throw_invalid("timeout", "a positive number of seconds", std::to_string(timeout));
  o.timeout_s = timeout;
  o.slot_bytes = slot_bytes;
  if (oneshot_bytes < 0) throw_invalid("oneshot_bytes", "a number of bytes >= 0", std::to_string(oneshot_bytes));
  o.oneshot_bytes = oneshot_bytes;
  return o;
}

ReduceOp reduce_op(int op) {
  if (op < 0 || op > 3) throw_invalid("op", "0..3 (sum, avg, max, min)", std::to_string(op));
  return static_cast<ReduceOp>(op);
}

}  // namespace

void bind_collective(py::module_& m) {
  py::class_<Communicator, std::shared_ptr<Communicator>>(m, "Communicator")
      .def_property_readonly("rank", &Communicator::rank)
      .def_property_readonly("size", &Communicator::size)
      .def_property("timeout", &Communicator::timeout, &Communicator::set_timeout)
      .def_property_readonly("wire_bytes", &Communicator::wire_bytes)
      .def_property_readonly("slot_bytes", [](const Communicator& c) { return c.options().slot_bytes; })
      .def_property_readonly("oneshot_bytes", [](const Communicator& c) { return c.options().oneshot_bytes; })
      .def("allreduce",
           [](Communicator& c, const py::array& in, const py::array& out, int op, int comp) {
             const Flat i = flat(in, "x"), o = flat(out, "out", true);
             if (o.count != i.count) throw_invalid("out", std::to_string(i.count) + " elements", std::to_string(o.count));
             if (comp != 0 && o.dtype != i.dtype) throw_invalid("out", "the dtype of x", dtype_name(o.dtype));
             if (comp < 0 || comp > 3) throw_invalid("compression", "0..3", std::to_string(comp));
             const ReduceOp rop = reduce_op(op);
             const collective::Shape shape = shape_of(in);
             py::gil_scoped_release release;
             c.allreduce(i.data, o.data, i.dtype, i.count, rop, static_cast<Compression>(comp), shape);
           },
           py::arg("x"), py::arg("out"), py::arg("op"), py::arg("compression"))
      .def("reduce_scatter",
           [](Communicator& c, const py::array& in, const py::array& out, const std::vector<int64_t>& offsets, int op) {
             const Flat i = flat(in, "x"), o = flat(out, "out", true);
             if (static_cast<int>(offsets.size()) != c.size() + 1)
               throw_invalid("offsets", std::to_string(c.size() + 1) + " offsets", std::to_string(offsets.size()));
             const int64_t mine = offsets[c.rank() + 1] - offsets[c.rank()];
             if (o.count != mine) throw_invalid("out", std::to_string(mine) + " elements", std::to_string(o.count));
             if (o.dtype != i.dtype) throw_invalid("out", "the dtype of x", dtype_name(o.dtype));
             const ReduceOp rop = reduce_op(op);
             const collective::Shape shape = shape_of(in);
             py::gil_scoped_release release;
             c.reduce_scatter(i.data, o.data, i.dtype, i.count, offsets.data(), rop, shape);
           },
           py::arg("x"), py::arg("out"), py::arg("offsets"), py::arg("op"))
      .def("all_gather",
           [](Communicator& c, const py::array& in, const py::array& out) {
             const Flat i = flat(in, "x"), o = flat(out, "out", true);
             if (o.count != i.count * c.size())
               throw_invalid("out", std::to_string(i.count * c.size()) + " elements", std::to_string(o.count));
             if (o.dtype != i.dtype) throw_invalid("out", "the dtype of x", dtype_name(o.dtype));
             const collective::Shape shape = shape_of(in);
             py::gil_scoped_release release;
             c.all_gather(i.data, o.data, i.dtype, i.count, shape);
           },
           py::arg("x"), py::arg("out"))
      .def("broadcast",
           [](Communicator& c, const py::array& buf, int root) {
             const Flat b = flat(buf, "x", true);
             const collective::Shape shape = shape_of(buf);
             py::gil_scoped_release release;
             c.broadcast(b.data, b.dtype, b.count, root, shape);
           },
           py::arg("x"), py::arg("root"))
      .def("barrier", [](Communicator& c) {
        py::gil_scoped_release release;
        c.barrier();
      })
      .def("abort", &Communicator::abort, py::arg("why"));

  m.def(
      "join_shm",
      [](const std::string& job, int rank, int size, double timeout, int64_t slot_bytes, int64_t oneshot_bytes) {
        const Options o = options(timeout, slot_bytes, oneshot_bytes);
        std::unique_ptr<Communicator> c;
        {
          py::gil_scoped_release release;
          c = Communicator::join_shm(job, rank, size, o);
        }
        return std::shared_ptr<Communicator>(std::move(c));
      },
      py::arg("job"), py::arg("rank"), py::arg("size"), py::arg("timeout"), py::arg("slot_bytes"),
      py::arg("oneshot_bytes"));
  m.def(
      "thread_group",
      [](int size, double timeout, int64_t slot_bytes, int64_t oneshot_bytes) {
        auto comms = Communicator::thread_group(size, options(timeout, slot_bytes, oneshot_bytes));
        std::vector<std::shared_ptr<Communicator>> out;
        for (auto& c : comms) out.emplace_back(std::move(c));
        return out;
      },
      py::arg("size"), py::arg("timeout"), py::arg("slot_bytes"), py::arg("oneshot_bytes"));

  // Reduction kernels, for the MPI communicator's own reduction steps.
  m.def(
      "reduce_arrays",
      [](const std::vector<py::array>& srcs, const py::array& out, int op, int divisor, int max_threads) {
        if (srcs.empty()) throw_invalid("srcs", "at least one array", "none");
        const Flat o = flat(out, "out", true);
        std::vector<const void*> ptrs;
        for (const auto& s : srcs) {
          const Flat f = flat(s, "srcs");
          if (f.dtype != o.dtype || f.count != o.count)
            throw_invalid("srcs", std::string(dtype_name(o.dtype)) + " arrays of " + std::to_string(o.count) + " elements",
                          std::string(dtype_name(f.dtype)) + " of " + std::to_string(f.count));
          ptrs.push_back(f.data);
        }
        const ReduceOp rop = reduce_op(op);
        py::gil_scoped_release release;
        cpu::reduce_n_parallel(o.dtype, static_cast<cpu::ReduceOp>(rop), ptrs.data(), static_cast<int>(ptrs.size()), o.data,
                               o.count, divisor, max_threads);
      },
      py::arg("srcs"), py::arg("out"), py::arg("op"), py::arg("divisor"), py::arg("max_threads") = 0);
  m.def(
      "convert",
      [](const py::array& src, const py::array& dst) {
        const Flat s = flat(src, "src"), d = flat(dst, "dst", true);
        if (s.count != d.count) throw_invalid("dst", std::to_string(s.count) + " elements", std::to_string(d.count));
        py::gil_scoped_release release;
        cpu::convert(s.dtype, s.data, d.dtype, d.data, s.count);
      },
      py::arg("src"), py::arg("dst"));
  m.def(
      "quantize_int8",
      [](const py::array& x, const py::array& q, const py::array& scales) {
        const Flat xf = flat(x, "x"), qf = flat(q, "q", true), sf = flat(scales, "scales", true);
        if (xf.dtype != DType::kF32 || qf.dtype != DType::kS8 || sf.dtype != DType::kF32)
          throw_invalid("x, q, scales", "f32, s8, f32", std::string(dtype_name(xf.dtype)) + ", " + dtype_name(qf.dtype) + ", " + dtype_name(sf.dtype));
        if (qf.count != xf.count || sf.count != cpu::int8_blocks(xf.count))
          throw_invalid("q, scales", "n and ceil(n/256) elements", std::to_string(qf.count) + ", " + std::to_string(sf.count));
        py::gil_scoped_release release;
        cpu::quantize_int8_blocks(static_cast<const float*>(xf.data), xf.count, static_cast<int8_t*>(qf.data),
                                  static_cast<float*>(sf.data));
      },
      py::arg("x"), py::arg("q"), py::arg("scales"));
  m.def(
      "dequantize_int8",
      [](const py::array& q, const py::array& scales, const py::array& out) {
        const Flat qf = flat(q, "q"), sf = flat(scales, "scales"), of = flat(out, "out", true);
        if (of.dtype != DType::kF32 || qf.dtype != DType::kS8 || sf.dtype != DType::kF32)
          throw_invalid("q, scales, out", "s8, f32, f32", std::string(dtype_name(qf.dtype)) + ", " + dtype_name(sf.dtype) + ", " + dtype_name(of.dtype));
        if (qf.count != of.count || sf.count != cpu::int8_blocks(of.count))
          throw_invalid("q, scales", "n and ceil(n/256) elements", std::to_string(qf.count) + ", " + std::to_string(sf.count));
        py::gil_scoped_release release;
        cpu::dequantize_int8_blocks(static_cast<const int8_t*>(qf.data), static_cast<const float*>(sf.data), of.count,
                                    static_cast<float*>(of.data));
      },
      py::arg("q"), py::arg("scales"), py::arg("out"));
  m.def(
      "reduce_int8",
      [](const std::vector<py::array>& qs, const std::vector<py::array>& scales, const py::array& q_out,
         const py::array& s_out, int op, int divisor) {
        if (qs.empty() || qs.size() != scales.size() || qs.size() > 64)
          throw_invalid("qs, scales", "1 to 64 equally many arrays", std::to_string(qs.size()) + ", " + std::to_string(scales.size()));
        const Flat qo = flat(q_out, "q_out", true), so = flat(s_out, "s_out", true);
        if (qo.dtype != DType::kS8 || so.dtype != DType::kF32 || so.count != cpu::int8_blocks(qo.count))
          throw_invalid("q_out, s_out", "s8 of n and f32 of ceil(n/256) elements", "other arrays");
        std::vector<const int8_t*> qp;
        std::vector<const float*> sp;
        for (size_t i = 0; i < qs.size(); ++i) {
          const Flat a = flat(qs[i], "qs"), b = flat(scales[i], "scales");
          if (a.dtype != DType::kS8 || b.dtype != DType::kF32 || a.count != qo.count || b.count != so.count)
            throw_invalid("qs, scales", "arrays shaped like q_out, s_out", "other arrays");
          qp.push_back(static_cast<const int8_t*>(a.data));
          sp.push_back(static_cast<const float*>(b.data));
        }
        const ReduceOp rop = reduce_op(op);
        py::gil_scoped_release release;
        cpu::reduce_int8_blocks(static_cast<cpu::ReduceOp>(rop), qp.data(), sp.data(), static_cast<int>(qp.size()), qo.count,
                                divisor, static_cast<int8_t*>(qo.data), static_cast<float*>(so.data));
      },
      py::arg("qs"), py::arg("scales"), py::arg("q_out"), py::arg("s_out"), py::arg("op"), py::arg("divisor"));
}

}  // namespace aicc::bindings
