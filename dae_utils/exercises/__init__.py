"""Checks for the notebooks' exercises: call one on your answer to see whether it is right.

Each ``check_*`` function runs your function on a few inputs and compares it with
the course's own implementation. If it agrees, the check prints a line that says
so. If not, it raises ``NotYet`` with a hint that points at the usual mistake
without giving the answer away; in a notebook you see the hint alone, without a
traceback. (``NotYet`` is an ``AssertionError``, so nbgrader scores a failed check
as a failed test.) A ``NotImplementedError`` from an unfinished answer is passed
on unchanged.

The checks are fair to every honest answer: a number may come as any real type
(float, NumPy or torch scalar, float32 included) and is compared at a tolerance that
fits the quantity; a tensor may have any floating dtype and is compared at that
dtype's precision; an unusual return (None, a dict, an array of one number) gets a
hint, never a crash inside the check; and an answer that changes its input in
place is refused, because in the notebook it would quietly change the student's
data. Hints name the mistake, not the line that fixes it.

Each write-it-yourself exercise asks for a variant that the notebook does not show
(noise of a different strength at every pixel, batch norm in evaluation mode, a step
on another loss, sampling a fitted Gaussian, mappings from a count matrix; notebook 7's
reparameterisation step and KL term are written from the formulas alone), so that
copying a cell from above does not answer it. Where calling the course's own code
(or torch's ready-made layer) would answer it without the idea, the check watches
the calls your function makes and refuses that one, however it was imported.

The checks live in one module per notebook (``nb01`` to ``nb07``), their shared
helpers in ``common``; this package names them all, so ``exercises.check_model`` works
as well as ``exercises.nb02.check_model``. A notebook's grade cells reload ``common``
and then their notebook's module before they check
(``importlib.reload(dae_utils.exercises.nb01).check_...``), so rebinding a check or
a helper of either in an unlocked cell does not change what grades the answer.
"""

from .common import NotYet
from .nb01 import check_add_noise, check_add_noise_map, check_black_pixel_mse
from .nb02 import check_batch_norm_eval, check_model
from .nb03 import check_test_epoch, check_train_epoch, check_train_step_l1
from .nb04 import check_fitted_samples, check_random_grid
from .nb05 import check_mode_mapping_counts
from .nb06 import check_hungarian_counts
from .nb07 import check_elbo_loss, check_kl, check_reparameterize

__all__ = [
    "NotYet", "check_add_noise", "check_add_noise_map", "check_batch_norm_eval", "check_black_pixel_mse",
    "check_elbo_loss", "check_fitted_samples", "check_hungarian_counts", "check_kl", "check_mode_mapping_counts",
    "check_model", "check_random_grid", "check_reparameterize", "check_test_epoch", "check_train_epoch",
    "check_train_step_l1",
]
