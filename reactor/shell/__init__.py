"""The I/O shell around the pure rules: read fresh state, evaluate, apply, remember, audit.

- ``reads``       a competition's issues, read fresh from GitHub
- ``repoconfig``  ``.github/reactor.yml``, cached in Redis and re-read when pushed
- ``apply``       performs a Decision's actions as delta writes, checking the lease first
- ``coordinate``  the per-competition loop: lease, burst, evaluate, apply, settle, retry
"""
