/* An aicc_kernels backend written in C (C99) against aicc/backend.h, ABI 2.
 *
 *   conv2d     f32/f32/f32   direct convolution, NCHW and NHWC, groups, stride, dilation,
 *                            padding, bias, relu; gelu is declared unsupported
 *                            (AICC_STATUS_UNSUPPORTED: fallback= applies, the runner counts
 *                            those cases as unsupported)
 *   allreduce  f32/f32       sum / avg / max / min over the ranks of its communicator
 *
 * Build:  cc -std=c99 -O2 -shared -fPIC -I"$(python -m aicc_kernels --include-dir)" \
 *            conv_backend.c -o libaicc_c_example.so
 * Load:   ak.backends.native.load("./libaicc_c_example.so")     # registers "c-example"
 * Check:  python -m aicc_kernels.testing --backend c-example --ops conv2d,allreduce
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aicc/backend.h"

#if defined(__GNUC__)
#define EXPORT __attribute__((visibility("default")))
#else
#define EXPORT
#endif

static aicc_status fail(aicc_kernel_error* error, aicc_status status, const char* message) {
  if (error != NULL) {
    strncpy(error->message, message, AICC_KERNEL_ERROR_CAPACITY - 1);
    error->message[AICC_KERNEL_ERROR_CAPACITY - 1] = '\0';
  }
  return status;
}

/* Element offset of (n, c, h, w) in a 4-D view of the given layout. */
static int64_t at(const aicc_tensor4d_view* t, int32_t layout, int64_t n, int64_t c, int64_t h, int64_t w) {
  if (layout == AICC_LAYOUT_NCHW) return n * t->strides[0] + c * t->strides[1] + h * t->strides[2] + w * t->strides[3];
  return n * t->strides[0] + h * t->strides[1] + w * t->strides[2] + c * t->strides[3];
}

static aicc_status conv2d_f32(void* context, const aicc_tensor4d_view* x, const aicc_tensor4d_view* w,
                              const aicc_tensor4d_view* out, const aicc_conv2d_params* p, aicc_kernel_error* error) {
  const aicc_conv2d_geometry* g = &p->geometry;
  const int nchw = g->layout == AICC_LAYOUT_NCHW;
  const int64_t N = x->shape[0], C = nchw ? x->shape[1] : x->shape[3];
  const int64_t H = nchw ? x->shape[2] : x->shape[1], W = nchw ? x->shape[3] : x->shape[2];
  const int64_t K = w->shape[0], R = nchw ? w->shape[2] : w->shape[1], S = nchw ? w->shape[3] : w->shape[2];
  const int64_t P = nchw ? out->shape[2] : out->shape[1], Q = nchw ? out->shape[3] : out->shape[2];
  const int64_t cg = C / g->groups, kg = K / g->groups;
  const float* xp = (const float*)x->data;
  const float* wp = (const float*)w->data;
  float* op = (float*)out->data;
  int64_t n, k, i, j, c, r, s;
  (void)context;
  if (p->activation == AICC_ACTIVATION_GELU)
    return fail(error, AICC_STATUS_UNSUPPORTED, "activation: expected none or relu on c-example, got gelu");
  for (n = 0; n < N; ++n)
    for (k = 0; k < K; ++k) {
      const int64_t group = k / kg;
      for (i = 0; i < P; ++i)
        for (j = 0; j < Q; ++j) {
          float acc = 0.0f;
          for (c = 0; c < cg; ++c)
            for (r = 0; r < R; ++r) {
              const int64_t h = i * g->stride[0] - g->padding[0] + r * g->dilation[0];
              if (h < 0 || h >= H) continue; /* padded taps read zeros */
              for (s = 0; s < S; ++s) {
                const int64_t v = j * g->stride[1] - g->padding[2] + s * g->dilation[1];
                if (v < 0 || v >= W) continue;
                acc += xp[at(x, g->layout, n, group * cg + c, h, v)] * wp[at(w, g->layout, k, c, r, s)];
              }
            }
          if (p->bias != NULL) acc += p->bias[k];
          if (p->activation == AICC_ACTIVATION_RELU && acc < 0.0f) acc = 0.0f; /* NaN stays NaN */
          op[at(out, g->layout, n, k, i, j)] = acc;
        }
    }
  return AICC_STATUS_OK;
}

/* The communicator: this backend's "devices" are the ranks of one process, so all it
 * holds is their number (a real port would hold its device handles and links here). */
typedef struct comm {
  int32_t nranks;
} comm;

static aicc_status comm_create(void* context, int32_t nranks, void** out, aicc_kernel_error* error) {
  comm* c;
  (void)context;
  if (nranks < 1) return fail(error, AICC_STATUS_INVALID_ARGUMENT, "nranks: expected at least 1");
  c = (comm*)malloc(sizeof(comm));
  if (c == NULL) return fail(error, AICC_STATUS_DEVICE_ERROR, "comm_create: out of memory");
  c->nranks = nranks;
  *out = c;
  return AICC_STATUS_OK;
}

static void comm_destroy(void* context, void* c) {
  (void)context;
  free(c);
}

static aicc_status allreduce_f32(void* context, void* handle, int32_t nranks, const aicc_buffer_view* in,
                                 const aicc_buffer_view* out, const aicc_collective_params* p,
                                 aicc_kernel_error* error) {
  const comm* c = (const comm*)handle;
  const int64_t count = in[0].count;
  int64_t i;
  int32_t rank;
  (void)context;
  if (c == NULL || c->nranks != nranks) return fail(error, AICC_STATUS_INVALID_ARGUMENT, "comm: rank count mismatch");
  for (i = 0; i < count; ++i) {
    float acc = ((const float*)in[0].data)[i];
    for (rank = 1; rank < nranks; ++rank) {
      const float v = ((const float*)in[rank].data)[i];
      if (p->op == AICC_REDUCE_MAX) acc = (v > acc || v != v) ? v : acc;
      else if (p->op == AICC_REDUCE_MIN) acc = (v < acc || v != v) ? v : acc;
      else acc += v;
    }
    if (p->op == AICC_REDUCE_AVG) acc /= (float)nranks;
    for (rank = 0; rank < nranks; ++rank) ((float*)out[rank].data)[i] = acc;
  }
  return AICC_STATUS_OK;
}

EXPORT const aicc_backend_descriptor* aicc_backend_v1(void) {
  static aicc_kernel_entry entries[2];
  static aicc_backend_descriptor descriptor;
  if (descriptor.abi_version == 0) {
    entries[0].op = AICC_OP_CONV2D;
    entries[0].num_dtypes = 3;
    entries[0].dtypes[0] = entries[0].dtypes[1] = entries[0].dtypes[2] = AICC_F32;
    entries[0].fn = (aicc_any_kernel_fn)conv2d_f32;
    entries[1].op = AICC_OP_ALLREDUCE;
    entries[1].num_dtypes = 2;
    entries[1].dtypes[0] = entries[1].dtypes[1] = AICC_F32;
    entries[1].fn = (aicc_any_kernel_fn)allreduce_f32;
    descriptor.name = "c-example";
    descriptor.device = "cpu";
    descriptor.context = NULL;
    descriptor.kernels = entries;
    descriptor.num_kernels = 2;
    descriptor.comm_create = comm_create;
    descriptor.comm_destroy = comm_destroy;
    descriptor.abi_version = AICC_BACKEND_ABI_VERSION;
  }
  return &descriptor;
}
