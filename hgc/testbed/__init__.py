"""The local testbed behind ``hgc run``: heterogeneity emulation (CPU quota through cgroups,
kernel network shaping in namespaces), guaranteed cleanup, the run folder and the progress
display. It sits at the commands layer and may import everything below it.
"""
