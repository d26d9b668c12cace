"""Names: site, site section and series names for the marts (`b2p dimensions`).

freewheel_api  the Publisher API client (token, rate limits, retries, paging)
secrets        API credentials from the environment or AWS Secrets Manager
snapshots      the dimension snapshots in the lake, replaced whole
companion_files  the names from a delivery's companion files (`--from-files`)
command        the `b2p dimensions` command and its API configuration
"""
