"""The synthetic-data generator (`b2p sample`): realistic v4 logs and their ground truth.

world    the synthetic publisher: catalogue, slots and ads, in memory
files    the slots and ads written as hourly gzip CSV files
field    the field vocabulary of publishers' stored v4 tables (`--vocabulary field`)
truth    every model's rows computed from the same objects, never from the files
command  the `b2p sample` command
"""
