"""Models: the vector fields and ResNets of the continuity and classifier pages, flows, the Table 1 nets, saving."""
