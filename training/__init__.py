"""Training, evaluation and data preparation for StressLab (imports stresslab; never imported by it)."""
