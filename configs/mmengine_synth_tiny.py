# An mmengine-native config: `python -c "from mmengine import Config; from mmengine.runner import Runner;
# Runner.from_cfg(Config.fromfile('configs/mmengine_synth_tiny.py')).train()"` trains the tiny
# VTG-LLM on VTG-Synth (generate it first: vtg data synth work_dirs/vtg_synth).
custom_imports = dict(imports=["vtgcore.mm"], allow_failed_imports=False)
default_scope = "vtgcore"

synth_dir = "{{$VTG_SYNTH_DIR:work_dirs/vtg_synth}}"
work_dir = "work_dirs/mmengine_synth_tiny"

model = dict(type="VTGModel", recipe="recipes/vtgllm/synth_tiny.yaml", overrides=[])

train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    sampler=dict(type="EpochIndexSampler", shuffle=True),
    collate_fn=dict(type="vtgcore.vtg_collate"),  # mmengine looks collate functions up without switching scope
    dataset=dict(type="VTGInstructDataset", annotation=synth_dir + "/train.json", video_root=synth_dir,
                 num_frames=16, sampling="random_per_segment", image_size=32),
)
train_cfg = dict(type="IterBasedTrainLoop", max_iters=1500, val_interval=10**9)
optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=2e-3, weight_decay=0.01),
    clip_grad=dict(max_norm=1.0),
    paramwise_cfg=dict(bias_decay_mult=0.0, norm_decay_mult=0.0, flat_decay_mult=0.0),
)
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-3, by_epoch=False, begin=0, end=100),
    dict(type="CosineAnnealingLR", by_epoch=False, begin=100, end=1500, T_max=1400, eta_min_ratio=0.01),
]
default_hooks = dict(
    param_scheduler=dict(type="OptimStepParamSchedulerHook"),
    checkpoint=dict(type="VTGCheckpointHook", interval=500),
    logger=dict(type="LoggerHook", interval=50),
)
custom_hooks = [dict(type="TrainableTableHook"), dict(type="SkipReportHook")]
env_cfg = dict(dist_cfg=dict(backend="gloo"))
randomness = dict(seed=42)
