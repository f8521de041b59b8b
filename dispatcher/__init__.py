"""The dispatcher: owns incidents after they open: assignment, clock, credits, API, pages."""
