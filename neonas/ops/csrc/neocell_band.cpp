// NeoCell inference forward as one pass over memory (neonas.ops.native).
//
// A square NeoCell (h = h' = w = w', any shift) is a separable, position-dependent filter: its
// dense operators A [C, H, H] and B [C, W, W] are zero outside a band of radius R = k - 1 around
// the diagonal. With the bands stored per channel,
//   aband[c, i, d] = A[c, i, i + d - R],   bband[c, j, e] = B[c, j + e - R, j],
// the cell is
//   t[i, q] = sum_d aband[c, i, d] x[i + d - R, q],   y[i, j] = sum_e bband[c, j, e] t[i, j + e - R].
// Channels are processed 16 at a time (one vector lane per channel, each lane its own
// matrices), so every multiply-add is a full-width vector FMA whatever the map size. For each
// output row (column) only the band indices where some lane of the block has a non-zero
// coefficient are visited: with the shifted subgroups of 6-12 channels that is k to k + 2
// taps instead of 2k - 1. Zero coefficients left inside that range add exact zeros.

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

namespace {

constexpr int kLanes = 16;

// src [channel][position] (positions p = i * width + q at strides sh, sw; channels at sc) ->
// dst [position][lane], lanes >= `lanes` zero. Fast paths: contiguous planes (NCHW) as 16x16
// transposed tiles, contiguous channels (channels-last) as plain copies.
template <typename scalar_t>
void gather_block(const scalar_t* src, int64_t sc, int64_t sh, int64_t sw, int lanes,
                  int height, int width, scalar_t* dst) {
  const int positions = height * width;
  if (lanes < kLanes) std::fill(dst, dst + positions * kLanes, scalar_t(0));
  if (sw == 1 && sh == width) {
    for (int p0 = 0; p0 < positions; p0 += kLanes) {
      const int count = std::min(kLanes, positions - p0);
      for (int l = 0; l < lanes; ++l) {
        const scalar_t* row = src + l * sc + p0;
        for (int pp = 0; pp < count; ++pp) dst[(p0 + pp) * kLanes + l] = row[pp];
      }
    }
  } else if (sc == 1) {
    for (int i = 0; i < height; ++i)
      for (int q = 0; q < width; ++q) {
        const scalar_t* at = src + i * sh + q * sw;
        scalar_t* out = dst + (i * width + q) * kLanes;
        for (int l = 0; l < lanes; ++l) out[l] = at[l];
      }
  } else {
    for (int l = 0; l < lanes; ++l)
      for (int i = 0; i < height; ++i)
        for (int q = 0; q < width; ++q)
          dst[(i * width + q) * kLanes + l] = src[l * sc + i * sh + q * sw];
  }
}

// The inverse of gather_block for the first `lanes` lanes, adding bias (lane planes
// `bias_plane` apart, positions like the output's) if given.
template <typename scalar_t>
void scatter_block(const scalar_t* src, const scalar_t* bias, int lanes, int height, int width,
                   scalar_t* dst, int64_t sc, int64_t sh, int64_t sw, int64_t bias_plane) {
  const int positions = height * width;
  if (sw == 1 && (sh == width || height == 1)) {  // a strip of whole rows of contiguous planes
    for (int p0 = 0; p0 < positions; p0 += kLanes) {
      const int count = std::min(kLanes, positions - p0);
      for (int l = 0; l < lanes; ++l) {
        scalar_t* row = dst + l * sc + p0;
        const scalar_t* b = bias == nullptr ? nullptr : bias + l * bias_plane + p0;
        for (int pp = 0; pp < count; ++pp)
          row[pp] = src[(p0 + pp) * kLanes + l] + (b == nullptr ? scalar_t(0) : b[pp]);
      }
    }
  } else {
    for (int i = 0; i < height; ++i)
      for (int q = 0; q < width; ++q) {
        const int p = i * width + q;
        scalar_t* at = dst + i * sh + q * sw;
        for (int l = 0; l < lanes; ++l)
          at[l * sc] =
              src[p * kLanes + l] + (bias == nullptr ? scalar_t(0) : bias[l * bias_plane + p]);
      }
  }
}

// Left product of one output row i for output columns q0 .. q0 + QB - 1: sum over the band rows,
// each coefficient vector loaded once for QB outputs (register blocking).
template <typename scalar_t, int QB>
inline void left_columns(const scalar_t* coef, const scalar_t* rows, int lo, int hi, int width,
                         int q0, scalar_t* t) {
  scalar_t acc[QB][kLanes] = {};
  for (int d = lo; d <= hi; ++d) {
    const scalar_t* a = coef + d * kLanes;
    const scalar_t* xq = rows + (d * width + q0) * kLanes;
    for (int u = 0; u < QB; ++u)
      for (int l = 0; l < kLanes; ++l) acc[u][l] += a[l] * xq[u * kLanes + l];
  }
  for (int u = 0; u < QB; ++u) std::copy(acc[u], acc[u] + kLanes, t + (q0 + u) * kLanes);
}

// Right product of RB consecutive rows of the left product t (rows `stride` apart) for output
// column j, each coefficient vector loaded once for RB outputs.
template <typename scalar_t, int RB>
inline void right_rows(const scalar_t* coef, const scalar_t* t, int64_t stride, int lo, int hi,
                       int j, int rmax, scalar_t* out) {
  scalar_t acc[RB][kLanes] = {};
  for (int e = lo; e <= hi; ++e) {
    const scalar_t* b = coef + e * kLanes;
    const scalar_t* te = t + (j + e - rmax) * kLanes;
    for (int r = 0; r < RB; ++r)
      for (int l = 0; l < kLanes; ++l) acc[r][l] += b[l] * te[r * stride + l];
  }
  for (int r = 0; r < RB; ++r) std::copy(acc[r], acc[r] + kLanes, out + r * stride + j * kLanes);
}

constexpr int kBlock = 4;  // rows per strip, and columns per coefficient load (or twice that)

template <typename scalar_t>
void block_forward(
    const scalar_t* x, int64_t sc, int64_t sh, int64_t sw, int lanes,
    const scalar_t* aband, const scalar_t* bband, const int* arange, const int* brange, int rmax,
    const scalar_t* bias, scalar_t* y, int64_t yc, int64_t yh, int64_t yw,
    int height, int width, scalar_t* xin, scalar_t* tmp) {
  const int band = 2 * rmax + 1;
  const int64_t row = static_cast<int64_t>(width) * kLanes;
  gather_block(x, sc, sh, sw, lanes, height, width, xin);  // xin[i][q][lane]
  // kBlock rows at a time: tmp holds their left product, then (in place of xin's rows, which
  // are read by later rows: a separate half of tmp) their output rows.
  scalar_t* t = tmp;
  scalar_t* out = tmp + kBlock * row;
  for (int i0 = 0; i0 < height; i0 += kBlock) {
    const int rows = std::min(kBlock, height - i0);
    // Left product: output row i combines input rows i - R .. i + R. Column blocks outside,
    // rows inside, so that a block's input rows are read from L1 by all rows of the group.
    int lo[kBlock], hi[kBlock];
    const scalar_t* coef[kBlock];
    const scalar_t* from[kBlock];
    for (int r = 0; r < rows; ++r) {
      const int i = i0 + r;
      lo[r] = arange[2 * i];
      hi[r] = arange[2 * i + 1];
      coef[r] = aband + i * band * kLanes;
      from[r] = xin + (i - rmax) * row;
    }
    int q = 0;
    // 8 then 4 columns per coefficient load: 8 independent FMA chains hide the FMA latency.
    for (; q + 2 * kBlock <= width; q += 2 * kBlock)
      for (int r = 0; r < rows; ++r)
        left_columns<scalar_t, 2 * kBlock>(coef[r], from[r], lo[r], hi[r], width, q, t + r * row);
    for (; q + kBlock <= width; q += kBlock)
      for (int r = 0; r < rows; ++r)
        left_columns<scalar_t, kBlock>(coef[r], from[r], lo[r], hi[r], width, q, t + r * row);
    for (; q < width; ++q)
      for (int r = 0; r < rows; ++r)
        left_columns<scalar_t, 1>(coef[r], from[r], lo[r], hi[r], width, q, t + r * row);
    // Right product: output column j combines columns j - R .. j + R of the same row.
    for (int j = 0; j < width; ++j) {
      const int lo = brange[2 * j], hi = brange[2 * j + 1];
      const scalar_t* coef = bband + j * band * kLanes;
      if (rows == kBlock) {
        right_rows<scalar_t, kBlock>(coef, t, row, lo, hi, j, rmax, out);
      } else {
        for (int r = 0; r < rows; ++r)
          right_rows<scalar_t, 1>(coef, t + r * row, row, lo, hi, j, rmax, out + r * row);
      }
    }
    scatter_block(out, bias == nullptr ? nullptr : bias + i0 * width, lanes, rows, width,
                  y + i0 * yh, yc, yh, yw, static_cast<int64_t>(height) * width);
  }
}

}  // namespace

// x [N, C, H, W] (any strides, e.g. channels-last; the output is channels-last);
// aband [blocks, H, 2R+1, 16], bband [blocks, W, 2R+1, 16]; arange [blocks, H, 2] and
// brange [blocks, W, 2] (int32): the first and last band index with a non-zero coefficient in
// any lane of the block (first > last: none); bias [C, H, W] or empty.
torch::Tensor band_forward(
    torch::Tensor x, torch::Tensor aband, torch::Tensor bband, torch::Tensor arange,
    torch::Tensor brange, torch::Tensor bias) {
  TORCH_CHECK(x.dim() == 4 && aband.dim() == 4 && bband.dim() == 4, "neocell_band: bad ranks");
  TORCH_CHECK(aband.is_contiguous() && bband.is_contiguous(), "neocell_band: bands not contiguous");
  TORCH_CHECK(aband.scalar_type() == x.scalar_type() && bband.scalar_type() == x.scalar_type(),
              "neocell_band: bands and input differ in dtype");
  const int64_t batch = x.size(0), channels = x.size(1);
  const int height = x.size(2), width = x.size(3);
  const int64_t blocks = aband.size(0);
  const int rmax = (aband.size(2) - 1) / 2;
  TORCH_CHECK(blocks * kLanes >= channels && aband.size(1) == height && bband.size(1) == width,
              "neocell_band: band shapes do not match the input");
  auto arange_i = arange.to(torch::kInt32).contiguous();
  auto brange_i = brange.to(torch::kInt32).contiguous();
  const bool has_bias = bias.numel() > 0;
  auto bias_c = has_bias ? bias.contiguous() : bias;
  // Channels-last output: the block MLP after the cell reads channels-last rows, so this saves
  // it a full copy (its channels-last stores are contiguous runs of lanes here as well).
  auto y = torch::empty_like(x, x.options(), at::MemoryFormat::ChannelsLast);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "neocell_band", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    const scalar_t* ap = aband.data_ptr<scalar_t>();
    const scalar_t* bp = bband.data_ptr<scalar_t>();
    const scalar_t* biasp = has_bias ? bias_c.data_ptr<scalar_t>() : nullptr;
    const int* arp = arange_i.data_ptr<int>();
    const int* brp = brange_i.data_ptr<int>();
    const int band = 2 * rmax + 1;
    at::parallel_for(0, batch * blocks, 1, [&](int64_t begin, int64_t end) {
      // The whole block's input (transposed) plus two strips of kBlock rows.
      std::vector<scalar_t> xin(static_cast<size_t>(height) * width * kLanes);
      std::vector<scalar_t> tmp(2 * kBlock * static_cast<size_t>(width) * kLanes);
      for (int64_t task = begin; task < end; ++task) {
        const int64_t n = task / blocks, blk = task % blocks;
        const int64_t c0 = blk * kLanes;
        const int lanes = static_cast<int>(std::min<int64_t>(kLanes, channels - c0));
        block_forward<scalar_t>(
            xp + n * x.stride(0) + c0 * x.stride(1), x.stride(1), x.stride(2), x.stride(3), lanes,
            ap + blk * height * band * kLanes, bp + blk * width * band * kLanes,
            arp + blk * height * 2, brp + blk * width * 2, rmax,
            biasp == nullptr ? nullptr : biasp + c0 * height * width,
            yp + n * y.stride(0) + c0 * y.stride(1), y.stride(1), y.stride(2), y.stride(3),
            height, width, xin.data(), tmp.data());
      }
    });
  });
  return y;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("band_forward", &band_forward, "NeoCell inference forward, banded and channel-vectorized");
}
