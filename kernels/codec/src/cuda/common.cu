#include "common.cuh"

namespace covenant {
namespace cuda {

std::vector<SumGroup> sum_groups(const Plan& plan, std::vector<size_t>* first_group) {
  std::vector<SumGroup> groups;
  uint64_t offset = 0;
  first_group->clear();
  for (const TensorPlan& t : plan.tensors) {
    first_group->push_back(groups.size());
    for (uint64_t c = 0; c < t.layout.chunks; c += kSumGroup)
      groups.push_back({offset + c, offset + std::min<uint64_t>(t.layout.chunks, c + kSumGroup)});
    offset += t.layout.chunks;
  }
  first_group->push_back(groups.size());
  return groups;
}

namespace {
__global__ void group_sums(const double* partial, const SumGroup* groups, uint64_t n,
                           uint64_t stride, uint64_t offset, double* out) {
  uint64_t g = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (g >= n) return;
  double s = 0.0;
  for (uint64_t c = groups[g].begin; c < groups[g].end; ++c)
    s = __dadd_rn(s, partial[c * stride + offset]);
  out[g] = s;
}
}  // namespace

std::vector<double> reduce_partials(const DeviceArray<double>& partial,
                                    const DeviceArray<SumGroup>& groups,
                                    const std::vector<size_t>& first_group, size_t tensors,
                                    uint64_t stride, uint64_t offset) {
  const uint64_t n = groups.size();
  DeviceArray<double> totals(n);
  group_sums<<<unsigned((n + 255) / 256), 256>>>(partial.get(), groups.get(), n, stride, offset,
                                                 totals.get());
  check(cudaGetLastError(), "group_sums");
  std::vector<double> host = totals.download();
  std::vector<double> out(tensors, 0.0);
  for (size_t t = 0; t < tensors; ++t)
    for (size_t g = first_group[t]; g < first_group[t + 1]; ++g) out[t] += host[g];
  return out;
}

}  // namespace cuda
}  // namespace covenant
