"""Do the frozen tiny VLM's hidden states say which colour word is the edit's target? (docs/sft.md)

A linear probe on the last hidden states of the user turn (what the DiT sees with ``vlm_crop_system``) classifies
each colour word of recolor / replace instructions as the source colour (first) or the target colour (second, in
every toy template). High held-out accuracy means the instruction features carry the edit and a weak base is the
DiT's problem, not the text path's.

Run: ``python bench/vlm_probe.py [--train 600] [--test 300]``
"""

from __future__ import annotations

import argparse


def colour_tokens(vlm, world, lo: int, hi: int):
    """(features [N, D], labels [N]) for the two colour words of recolor / replace image pairs lo..hi-1."""
    import torch

    from viva.data.toyworld.scene import PALETTE

    tok = vlm.processor.tokenizer
    xs, ys = [], []
    for i in range(lo, hi):
        s = world.image_pair(i, ("recolor", "replace")[i % 2])
        states = vlm.encode([s.instruction], [s.source_video[0]]).hidden_states[0]  # [L, D], user turn only
        ids = vlm.processor(text=[vlm._prompt(s.instruction, False)], images=[s.source_video[0]],
                            return_tensors="pt")["input_ids"][0]
        ids = ids[int((ids == vlm.model.config.image_token_index).nonzero()[0, 0]):]  # the same crop as encode
        pos = [j for j, t in enumerate(ids.tolist()) if tok.decode([t]).strip() in PALETTE]
        if len(pos) != 2:  # a colour word split into several tokens: skip the sample
            continue
        for k, j in enumerate(pos):
            xs.append(states[j])
            ys.append(float(k == 1))
    return torch.stack(xs), torch.tensor(ys)


def main() -> None:
    """Fit the probe on train-index instructions, print its accuracy on later indices."""
    import torch

    from viva.data.toyworld import ToyWorld
    from viva.models.vlm_instructor import VLMInstructor

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=600)
    ap.add_argument("--test", type=int, default=300)
    args = ap.parse_args()
    torch.manual_seed(0)
    vlm = VLMInstructor.from_pretrained("tiny", crop_system=True)
    world = ToyWorld(seed=0, num_frames=1, height=32, width=32, split_name="train")
    xtr, ytr = colour_tokens(vlm, world, 0, args.train)
    xte, yte = colour_tokens(vlm, world, 10_000, 10_000 + args.test)
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    probe = torch.nn.Linear(xtr.shape[1], 1)
    opt = torch.optim.Adam(probe.parameters(), 1e-2)
    for _ in range(2000):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(probe((xtr - mu) / sd).squeeze(-1), ytr)
        opt.zero_grad()
        loss.backward()
        opt.step()
    acc = float(((probe((xte - mu) / sd).squeeze(-1) > 0).float() == yte).float().mean())
    print(f"target-vs-source colour word, linear probe on VLM states: held-out accuracy {acc:.3f} "
          f"({len(yte)} tokens; trained on {len(ytr)}, final loss {loss.item():.3f}; chance 0.5)")


if __name__ == "__main__":
    main()
