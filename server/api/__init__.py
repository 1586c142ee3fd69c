"""HTTP handlers. Handlers stay short: validation here, work in the library and suggester."""
