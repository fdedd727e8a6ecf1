"""GPU probe: how far cuDNN's float32 LSTM is from float64, with TF32 off by the old and the new API."""
import torch

torch.manual_seed(0)
dev = "cuda"
print("torch", torch.__version__, "cudnn", torch.backends.cudnn.version())
for name in ("fp32_precision",):
    for mod in ("torch.backends.cudnn", "torch.backends.cudnn.rnn", "torch.backends.cuda.matmul"):
        try:
            print(mod, name, eval(f"{mod}.{name}"))
        except Exception as e:
            print(mod, name, "n/a", type(e).__name__)


def err(lstm, x, h0, c0):
    ref = lstm.to("cpu", torch.float64)
    with torch.no_grad():
        o64, (h64, c64) = ref(x.double().cpu(), (h0.double().cpu(), c0.double().cpu()))
        l32 = ref.to(dev, torch.float32)
        o32, (h32, c32) = l32(x.to(dev), (h0.to(dev), c0.to(dev)))
    rel = ((o32.double().cpu() - o64).abs() / o64.abs().clamp_min(1e-30)).max().item()
    return rel / 2 ** -24  # in units of float32's u


for setting in ("allow_tf32=False", "allow_tf32=False + rnn.fp32_precision=ieee"):
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    if "ieee" in setting:
        try:
            torch.backends.cudnn.rnn.fp32_precision = "ieee"
        except Exception as e:
            print("cannot set rnn.fp32_precision:", e)
    for case in ("biases only (activations)", "full-mantissa weights m=n=1", "full-mantissa weights m=n=64"):
        n = 64 if "64" in case else 1
        lstm = torch.nn.LSTM(n, n)
        with torch.no_grad():
            if "biases" in case:
                lstm.weight_ih_l0.zero_(); lstm.weight_hh_l0.zero_()
                lstm.bias_ih_l0.uniform_(-3, 3); lstm.bias_hh_l0.zero_()
            else:
                for p in lstm.parameters():
                    p.uniform_(-1, 1)
        x = torch.rand(5, 3, n) * 2 - 1
        h0, c0 = torch.rand(1, 3, n) - 0.5, torch.rand(1, 3, n) - 0.5
        print(f"{setting}: {case}: max relative error of the outputs = {err(lstm, x, h0, c0):.1f} u")
