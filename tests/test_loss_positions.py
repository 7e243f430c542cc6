"""The training loss computed only at the positions that predict a label (``return_logits=False``)
equals the full-logits loss, value and gradients."""

import torch


def _batch(proc, model):
    g = torch.Generator().manual_seed(0)
    frames = torch.randn(3, 8, 3, 32, 32, generator=g)
    ts = torch.arange(8.0).expand(3, 8).clone()
    mask = torch.ones(3, 8, dtype=torch.bool)
    mask[2, 5:] = False
    turns = [[{"q": "When?", "a": "From 1 to 2 seconds."}], [{"q": "Find the red circle", "a": "3"}],
             [{"q": "x", "a": "A much longer answer about the blue square that grows."}]]
    text = proc(turns, [ts[i][mask[i]].tolist() for i in range(3)], add_generation_prompt=False, num_frames=8)
    return frames, ts, mask, text


def test_loss_only_at_label_positions_matches_full_loss(tiny):
    model, proc = tiny
    model.train()
    frames, ts, mask, text = _batch(proc, model)
    assert (text["labels"] != -100).sum() < text["labels"].numel() // 2  # most positions carry no label
    grads = []
    losses = []
    for return_logits in (True, False):
        model.zero_grad()
        torch.manual_seed(0)
        out = model(frames, ts, text["input_ids"], text["attention_mask"], text["labels"], frame_mask=mask,
                    return_logits=return_logits)
        out.loss.backward()
        losses.append(out.loss.detach())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
        if not return_logits:
            assert out.logits.shape[1] < text["input_ids"].shape[1]  # only the kept positions
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-6, atol=1e-6)
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 5
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-5, atol=1e-6, msg=name)
