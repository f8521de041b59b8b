"""The collector: validates, stores and detects; opens incidents the moment evidence arrives."""
