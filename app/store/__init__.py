"""State shared by every worker and instance through Redis (REDIS_URL), beside the in-process defaults.

`link.RedisLink` is the one connection with its outage handling; `bounded.RedisLRU` the size- and
time-bounded map the answer cache and the Responses store keep in it.
"""
