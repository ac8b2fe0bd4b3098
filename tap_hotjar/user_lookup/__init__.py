"""`hotjar-user-lookup`: data-subject (access and erasure) requests through Hotjar's User Lookup API.

A product of its own beside the tap: it shares the tap's settings and HTTP layer, nothing else.
`cli` is the command line, `subjects` reads and checks data subjects, `client` sends them.
"""
