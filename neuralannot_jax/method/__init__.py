"""How the network's output becomes a body and a loss: head output -> parameters -> joints -> loss."""
