// Device discovery. With the static runtime these calls work without a driver: they
// return an error code (e.g. cudaErrorInsufficientDriver / cudaErrorNoDevice) whose string
// becomes the backend's "unavailable" reason.
#include "cuda_common.cuh"

namespace aicc::cuda {

int device_count(std::string* reason) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    if (reason) *reason = std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return -1;
  }
  if (count == 0 && reason) *reason = "cudaGetDeviceCount found no device";
  return count;
}

int compute_capability(int device) {
  int major = 0, minor = 0;
  throw_if_failed(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device),
                  "cudaDeviceGetAttribute");
  throw_if_failed(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device),
                  "cudaDeviceGetAttribute");
  return major * 10 + minor;
}

int runtime_version() {
  int v = 0;
  cudaRuntimeGetVersion(&v);
  return v;
}

int driver_version() {
  int v = 0;
  if (cudaDriverGetVersion(&v) != cudaSuccess) return 0;
  return v;
}

void synchronize_device() { throw_if_failed(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

bool gemm_mma_supported(int device) { return compute_capability(device) >= 80; }

}  // namespace aicc::cuda
