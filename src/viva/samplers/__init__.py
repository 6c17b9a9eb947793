"""viva.samplers: sigma schedule, ODE / Flow-SDE / CPS steps and the one denoising loop (sigma = 1 is noise).

Conventions and equations: docs/samplers.md.
"""

from viva.samplers.cps import cps_step
from viva.samplers.denoise import denoise, step_is_stochastic, step_log_prob
from viva.samplers.flow_sde import sde_step
from viva.samplers.ode import ode_step
from viva.samplers.schedule import sigma_schedule
from viva.samplers.step_output import StepOutput, gaussian_log_prob
from viva.samplers.trajectory import Trajectory, sde_window, trained_step_indices

__all__ = [
    "StepOutput",
    "Trajectory",
    "cps_step",
    "denoise",
    "gaussian_log_prob",
    "ode_step",
    "sde_step",
    "sde_window",
    "sigma_schedule",
    "step_is_stochastic",
    "step_log_prob",
    "trained_step_indices",
]
