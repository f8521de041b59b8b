"""The dispatcher's HTTP side: the FastAPI app, its routes, the pages."""
