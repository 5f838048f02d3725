"""Business logic behind the views: plain data in, plain data (or iterators) out."""
