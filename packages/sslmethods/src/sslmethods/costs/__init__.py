"""What one pre-training step costs: measured on the compiled (or lowered) step and in closed form
(`step_cost`), and the study's Figure 3 built from it (`figure3`)."""
