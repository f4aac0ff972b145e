"""HTTP composition: the FastAPI application of the wallet operator."""
