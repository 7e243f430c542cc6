"""Child registries of mmengine's roots with scope ``vtgcore``."""

from mmengine.registry import DATASETS as MM_DATASETS
from mmengine.registry import FUNCTIONS as MM_FUNCTIONS
from mmengine.registry import HOOKS as MM_HOOKS
from mmengine.registry import METRICS as MM_METRICS
from mmengine.registry import MODELS as MM_MODELS
from mmengine.registry import Registry

MODELS = Registry("model", parent=MM_MODELS, scope="vtgcore", locations=["vtgcore.mm.model"])
DATASETS = Registry("dataset", parent=MM_DATASETS, scope="vtgcore", locations=["vtgcore.mm.datasets"])
FUNCTIONS = Registry("function", parent=MM_FUNCTIONS, scope="vtgcore", locations=["vtgcore.mm.datasets"])
HOOKS = Registry("hook", parent=MM_HOOKS, scope="vtgcore", locations=["vtgcore.mm.hooks"])
METRICS = Registry("metric", parent=MM_METRICS, scope="vtgcore", locations=["vtgcore.mm.metrics"])

# Children for the other mmengine registries, so that building under scope "vtgcore" finds them
# without warnings (they hold nothing of ours yet; lookups fall back to mmengine's roots).
from mmengine.registry import (  # noqa: E402
    DATA_SAMPLERS as MM_DATA_SAMPLERS, EVALUATOR as MM_EVALUATOR, LOG_PROCESSORS as MM_LOG_PROCESSORS,
    LOOPS as MM_LOOPS, MODEL_WRAPPERS as MM_MODEL_WRAPPERS, OPTIM_WRAPPER_CONSTRUCTORS as MM_OWC,
    OPTIM_WRAPPERS as MM_OPTIM_WRAPPERS, OPTIMIZERS as MM_OPTIMIZERS, PARAM_SCHEDULERS as MM_PARAM_SCHEDULERS,
    RUNNERS as MM_RUNNERS, VISBACKENDS as MM_VISBACKENDS, VISUALIZERS as MM_VISUALIZERS,
)

DATA_SAMPLERS = Registry("data sampler", parent=MM_DATA_SAMPLERS, scope="vtgcore", locations=["vtgcore.mm.datasets"])
EVALUATOR = Registry("evaluator", parent=MM_EVALUATOR, scope="vtgcore")
LOG_PROCESSORS = Registry("log_processor", parent=MM_LOG_PROCESSORS, scope="vtgcore")
LOOPS = Registry("loop", parent=MM_LOOPS, scope="vtgcore")
MODEL_WRAPPERS = Registry("model_wrapper", parent=MM_MODEL_WRAPPERS, scope="vtgcore")
OPTIM_WRAPPER_CONSTRUCTORS = Registry("optimizer wrapper constructor", parent=MM_OWC, scope="vtgcore")
OPTIM_WRAPPERS = Registry("optim_wrapper", parent=MM_OPTIM_WRAPPERS, scope="vtgcore")
OPTIMIZERS = Registry("optimizer", parent=MM_OPTIMIZERS, scope="vtgcore")
PARAM_SCHEDULERS = Registry("parameter scheduler", parent=MM_PARAM_SCHEDULERS, scope="vtgcore")
RUNNERS = Registry("runner", parent=MM_RUNNERS, scope="vtgcore")
VISBACKENDS = Registry("vis_backend", parent=MM_VISBACKENDS, scope="vtgcore")
VISUALIZERS = Registry("visualizer", parent=MM_VISUALIZERS, scope="vtgcore")
