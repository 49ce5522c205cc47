"""Diffusion math in plain torch: schedules, parameterisations, samplers, guidance. No BasicSR."""
