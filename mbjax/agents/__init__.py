"""Learners that compose models, planners and policies (PETS, MBPO, SAC, ...)."""
