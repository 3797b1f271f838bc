"""PyTorch SDPA peer for the dense attention benchmark, run on the same GPU in the same device call.

Times torch.nn.functional.scaled_dot_product_attention (fp16, the FlashAttention-2 backend forced,
then cuDNN's) at the shapes of bench/attention.bench.ts: B=2, H=16, N in {4096, 16384},
D in {64, 128}, causal and not. TFLOPS = 4*B*H*N*N*D / t, halved for causal. CUDA events around
back-to-back calls after a warm-up, median of 5 batches. Prints JSON rows.

Usage: python3 tools/sdpa-peer.py > sdpa.json
"""
import json
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

rows = []
dev = torch.cuda.get_device_name(0)
for backend, name in [(SDPBackend.FLASH_ATTENTION, "flash-attention-2"), (SDPBackend.CUDNN_ATTENTION, "cudnn")]:
    for n in (4096, 16384):
        for d in (64, 128):
            for causal in (False, True):
                b, h = 2, 16
                q, k, v = (torch.randn(b, h, n, d, device="cuda", dtype=torch.float16) for _ in range(3))
                try:
                    with sdpa_kernel(backend):
                        f = lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)
                        for _ in range(3):
                            f()
                        torch.cuda.synchronize()
                        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                        s.record(); f(); e.record(); torch.cuda.synchronize()
                        iters = max(3, int(300 / max(s.elapsed_time(e), 1e-3)))
                        times = []
                        for _ in range(5):
                            s.record()
                            for _ in range(iters):
                                f()
                            e.record(); torch.cuda.synchronize()
                            times.append(s.elapsed_time(e) / iters)
                    ms = sorted(times)[2]
                    fl = 4 * b * h * n * n * d / (2 if causal else 1)
                    rows.append(dict(peer=f"torch {torch.__version__} SDPA {name}", device=dev, B=b, H=h, N=n, D=d,
                                     causal=causal, ms=ms, tflops=fl / (ms * 1e-3) / 1e12))
                except Exception as ex:  # a backend that refuses a shape is reported, not fatal
                    rows.append(dict(peer=f"torch SDPA {name}", N=n, D=d, causal=causal, error=str(ex)[:200]))
print(json.dumps(rows, indent=1))
