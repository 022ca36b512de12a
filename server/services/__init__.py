"""Services: the work behind the API. Controllers stay thin; services take a database session and plain values."""
