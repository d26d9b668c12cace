"""Onboarding a feed nobody here has seen (`b2p inspect`): a bounded sample of its files, how
their columns map onto the log contract, and the mapping file to ingest them.

sampling     the first megabytes of a file, parsed by the ingest's own reader
candidates   which columns could be a required column: by name and by the shape of values
inspection   the proposal, the vocabularies and what ingest would reject
command      the `b2p inspect` command and its report
"""
