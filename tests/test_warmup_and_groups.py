"""LinearWarmupCosine (per-iteration warm-up, cosine per epoch), the classifier's scheduler interval and
steps per epoch, and decay_param_groups (no weight decay / no optimizer by kind of parameter)."""

import math

import lightning as L
import pytest
import torch
from torch import nn

from bsnn_lightning import LIFNeuron, SpikingClassifier
from bsnn_lightning.convert import PARAMETER_KINDS, decay_param_groups
from bsnn_lightning.models.layers import TimeDistributed, TimeScaledBatchNorm2d
from bsnn_lightning.schedulers import LinearWarmupCosine


def chainable_rates(base, start, eta_min, warmup_epochs, max_epochs, steps_per_epoch):
    """The rate of every iteration as mmengine's recursive (chainable) LinearLR(convert_to_iter_based) and
    CosineAnnealingLR(begin=warmup_epochs, by_epoch) produce it, written from their update rules."""
    total = warmup_epochs * steps_per_epoch - 1  # LinearLR.total_iters = end - begin - 1
    t_max = max_epochs - warmup_epochs
    lr, rates = base * start, []
    cosine_step = 0
    for i in range(max_epochs * steps_per_epoch):
        if i and i % steps_per_epoch == 0 and i // steps_per_epoch > warmup_epochs:
            cosine_step += 1
            k = cosine_step
            lr = (1 + math.cos(math.pi * k / t_max)) / (1 + math.cos(math.pi * (k - 1) / t_max)) * (lr - eta_min) + eta_min
        rates.append(lr)
        if i + 1 <= total:  # the warm-up's next iteration
            k = i + 1
            lr = lr * (1.0 + (1.0 - start) / (total * start + (k - 1) * (1.0 - start)))
    return rates


def rates_of(scheduler, optimizer, steps):
    out = []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


@pytest.mark.parametrize("warmup, epochs, per_epoch, start, eta_min", [(2, 6, 3, 5e-6, 1e-6), (3, 7, 5, 0.1, 0.0), (1, 4, 2, 0.5, 1e-3)])
def test_warmup_cosine_follows_mmengines_recursive_schedulers(warmup, epochs, per_epoch, start, eta_min):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.01)
    sched = LinearWarmupCosine(opt, warmup, epochs, start_factor=start, eta_min=eta_min, steps_per_epoch=per_epoch)
    ours = rates_of(sched, opt, epochs * per_epoch)
    reference = chainable_rates(0.01, start, eta_min, warmup, epochs, per_epoch)
    assert ours == pytest.approx(reference, rel=1e-9, abs=1e-15)
    assert ours[warmup * per_epoch - 1] == pytest.approx(0.01)  # the last warm-up step reaches the base rate
    assert len(set(ours[warmup * per_epoch + per_epoch : warmup * per_epoch + 2 * per_epoch])) == 1  # constant within an epoch


def test_warmup_cosine_per_step_and_per_group_floors():
    w0, w1 = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([{"params": [w0], "lr": 1.0}, {"params": [w1], "lr": 0.5}])
    sched = LinearWarmupCosine(opt, 0, 2, eta_min=0.1, steps_per_epoch=4, cosine_every="step")
    seen = []
    for _ in range(8):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    expected = [[0.1 + (b - 0.1) * (1 + math.cos(math.pi * i / 8)) / 2 for b in (1.0, 0.5)] for i in range(8)]
    assert sum(seen, []) == pytest.approx(sum(expected, []))


def test_warmup_cosine_needs_its_steps_per_epoch_after_step_zero():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = LinearWarmupCosine(opt, 1, 3, start_factor=0.25)
    assert opt.param_groups[0]["lr"] == 0.25
    opt.step()
    with pytest.raises(RuntimeError, match="before it knew the steps per epoch"):
        sched.step()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"warmup_epochs": 5, "max_epochs": 5}, "max_epochs to be an int > warmup_epochs"),
        ({"warmup_epochs": -1, "max_epochs": 5}, "warmup_epochs to be an int >= 0"),
        ({"warmup_epochs": 1, "max_epochs": 5, "start_factor": 0.0}, "start_factor in"),
        ({"warmup_epochs": 1, "max_epochs": 5, "eta_min": 2.0}, "learning rate >= eta_min"),
        ({"warmup_epochs": 1, "max_epochs": 5, "cosine_every": "batch"}, "cosine_every 'epoch' or 'step'"),
        ({"warmup_epochs": 1, "max_epochs": 5, "steps_per_epoch": 0}, "steps_per_epoch to be an int >= 1"),
    ],
)
def test_warmup_cosine_refuses_bad_settings(kwargs, message):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    with pytest.raises(ValueError, match=message):
        LinearWarmupCosine(opt, **kwargs)


class _Rates(L.Callback):
    def __init__(self):
        self.rates = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.rates.append(trainer.optimizers[0].param_groups[0]["lr"])


def test_classifier_steps_a_per_iteration_scheduler_and_tells_it_the_epoch_length():
    data = torch.utils.data.TensorDataset(torch.rand(12, 2, 3), torch.randint(0, 2, (12,)))
    loader = torch.utils.data.DataLoader(data, batch_size=4)  # 3 steps per epoch
    net = nn.Sequential(nn.Flatten(2), nn.Linear(3, 2))
    model = SpikingClassifier(
        net, num_classes=2, loss="ce",
        optimizer=lambda groups: torch.optim.SGD(groups, lr=1.0),
        lr_scheduler=lambda opt: LinearWarmupCosine(opt, warmup_epochs=1, max_epochs=3, start_factor=0.5),
    )  # fmt: skip
    seen = _Rates()
    trainer = L.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[seen], num_sanity_val_steps=0)  # fmt: skip
    trainer.fit(model, loader)
    assert seen.rates == pytest.approx(chainable_rates(1.0, 0.5, 0.0, 1, 3, 3))
    assert trainer.lr_scheduler_configs[0].interval == "step"


# --- parameter groups ------------------------------------------------------------------------------------------


def _net():
    return nn.Sequential(
        TimeDistributed(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4)),
        LIFNeuron(imp="layer"),
        TimeDistributed(nn.Conv2d(4, 4, 3, padding=1, bias=False)),
        TimeScaledBatchNorm2d(4, time_steps=2),
        TimeDistributed(nn.Flatten(), nn.Linear(4 * 4 * 4, 3)),
    )


def _names(net, params):
    ids = {id(p) for p in params}
    return sorted(n for n, p in net.named_parameters() if id(p) in ids)


def test_decay_groups_by_kind():
    net = _net()
    decayed, plain = decay_param_groups(net, weight_decay=0.1, no_decay=["norm", "bias", "imp"])
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert _names(net, decayed["params"]) == ["0.module.0.weight", "2.module.weight", "4.module.1.weight"]
    assert _names(net, plain["params"]) == [
        "0.module.0.bias", "0.module.1.bias", "0.module.1.weight", "1.imp", "3.bias", "3.time_scale", "3.weight", "4.module.1.bias",
    ]  # fmt: skip


def test_decay_groups_default_is_the_neuron_groups_and_excluded_kinds_leave_the_optimizer():
    net = _net()
    decayed, plain = decay_param_groups(net)
    assert _names(net, plain["params"]) == ["1.imp"] and "weight_decay" not in decayed
    groups = decay_param_groups(net, no_decay=["norm"], exclude=["imp", "bias"])
    held = _names(net, [p for g in groups for p in g["params"]])
    assert "1.imp" not in held and not any(n.endswith(".bias") and not n.startswith(("0.module.1", "3.")) for n in held)
    assert "0.module.1.bias" in held  # a norm layer's bias is a norm parameter, not a "bias"


@pytest.mark.parametrize("kwargs, error", [({"no_decay": ["weights"]}, ValueError), ({"exclude": "imp"}, TypeError)])
def test_decay_groups_refuse_unknown_kinds(kwargs, error):
    with pytest.raises(error, match=str(list(PARAMETER_KINDS)).replace("[", r"\[").replace("]", r"\]")):
        decay_param_groups(_net(), **kwargs)


def test_classifier_builds_its_groups_from_no_decay_and_not_optimized():
    net = _net()
    model = SpikingClassifier(net, num_classes=3, no_decay=["norm", "bias"], not_optimized=["imp"],
                              optimizer=lambda g: torch.optim.AdamW(g, lr=1e-3, weight_decay=0.06))  # fmt: skip
    optimizer = model.configure_optimizers()
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.06, 0.0]
    assert all(p is not net[1].imp for g in optimizer.param_groups for p in g["params"])
    with pytest.raises(ValueError, match="not_optimized to name kinds"):
        SpikingClassifier(net, num_classes=3, not_optimized=["imps"])
