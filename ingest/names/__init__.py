"""Names: site, site section and series names for the marts (`b2p dimensions`).

freewheel_api  the Publisher API client: token, paging, what an answer means
http           one request sent: urllib3 retries, the deadline, rate limits, proxies
paging         where a paginated list lives, reading items and totals from a page
api_errors     what can go wrong, as messages that say what to do
secrets        API credentials from the environment or AWS Secrets Manager
snapshots      the dimension snapshots in the lake, replaced whole
companion_files  the names from a delivery's companion files (`--from-files`)
command        the `b2p dimensions` command and its API configuration
"""
