/* train_cuda.h — the CUDA trainer's measuring entry (train_cuda.cu) for its tests and benches:
 * attach with knobs that switch its code paths, so alternatives can be timed and compared in
 * one process. Not a user interface (bitnet_train_params has the user's options) and not
 * needed for training: bn_train_cuda_attach (backend.h) is this with knobs NULL. */
#ifndef BN_TRAIN_CUDA_H
#define BN_TRAIN_CUDA_H
#include "bitnet.h"

typedef struct bn_train_model bn_train_model;
/* bn_train_cuda_attach with knobs, a comma list (NULL or "": the defaults):
 *   fa=0|1|2 flash attention (train_attn.cu; 1: fp32 inputs, 2: bf16 inputs; default 0, 2 in the
 *   fast mode), fs=0|1 / bs=0|1 fa 1's forward / backward split into two bf16 terms (default
 *   1 / 0; fs 0 in the fast mode), hbf=0|1 the LM head on bf16 operands (default 0, 1 in the
 *   fast mode), split=1..3 BitLinear
 *   backward dY terms (default 1, parity 3), dxs=1..split the dY terms of the dX product,
 *   i8=0|1 the int8 BitLinear forward GEMM (default 1), keep=0|1 rmsnorm_fwd also writes y and
 *   yq (default 0), rms=0|1 the rmsnorm kernels that hold rows in registers (default 1; 0: the
 *   strided ones, same forward bits), rmw=0|1 the rmsnorm forward of widths 2049..6144 on 1024
 *   threads (default 1; 0: 512), rf=0|1 with fa=2 the RoPE folded into the attention ops
 *   (default 1, same bits), fao=0|1 with fa=2 the attention kernels that launch the longest
 *   blocks first, double-buffer tiles by cp.async and load fragments by ldmatrix (default 1,
 *   same bits; 0: the plain ones), gf=0|1 the gating backward writes the gate / up BitLinear
 *   backward's bf16 dY operands (default 1 where dY is one term, same bits), gw=0|1 with gf it
 *   also writes the fp32 dg / du that nothing then reads (default 0, same bits), rpf=0|1 the
 *   rmsnorm forward rows kernel loops over rows prefetching the next one (default 1, same
 *   bits), vec=0|1 the
 *   4-element BitLinear epilogue, dY conversion and gating forward kernels (default 1, same
 *   bits), cf=0|1 the copy op deferred and taken over by the BitLinear forward that adds into the
 *   copy (default 1, same bits), ws=0|1 AdamW also sums |W| per chunk for the next weight
 *   quantization (default 1, same sums), lz=0|1 lazy zero_grad: tensors marked zero, the first
 *   dW GEMM of each writes with beta 0, adding ops zero theirs first (default 1, same bits),
 *   ov=0|1 AdamW, gradient norm and weight quantization on float4 (default 1; AdamW's bits, the
 *   |W| and norm sums in another order), rg=0|1 an rmsnorm backward (acc 0) deferred and done
 *   inside the gating backward on its dx, dx held in registers and not written (default 0:
 *   slower at the 1b shape; same bits), gn=0|1 the gating forward deferred and done inside the
 *   rmsnorm forward of its output (default 1, same bits). Unknown names are ignored. */
bitnet_status bn_train_cuda_attach_ex(bn_train_model *m, int dev, int precision, const char *knobs);
#endif
