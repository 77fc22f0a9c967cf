"""Search limits shared by the planner, the serving simulator and the CLI (no imports: the CLI
reads them when it starts, before any command loads numpy)."""

MAX_RESOLUTION = 4096  # px: the top of solve="resolution"'s search by default
MAX_BATCH = 4096  # images: the top of solve="batch"'s search; the largest batch serve simulates
MAX_DEVICES = 4096  # the most devices serve's fleet search tries

# Past these a question is answered with a warning that it is taken literally.
PLAUSIBLE_RATE = 1e9  # img/s offered or demanded: a million devices at a thousand each
PLAUSIBLE_OBJECTIVE_S = 86_400.0  # a latency objective of a day is no serving objective
MAX_SERVICE_CV = 10.0  # a service time varying 10x its mean is not one service (devices too)
