"""Tools the gateway runs for the model: which are offered to a request, and running a round of calls."""
