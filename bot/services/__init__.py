"""Services: the use cases over storage (receiving, handing off, sending, privacy, learning, reports)."""
