"""Layers shared by several model families (engine/models/ holds the families themselves).

- conv_queue.py: the causal dilated convolution with its Fast WaveNet queue (WaveNet, ByteNet, hierarchical);
- bytenet.py: ByteNet's norms, residual blocks, stack and head (the ByteNet LM and seq2seq);
- rnn_cells.py, rnn_stack.py: the recurrent cells, a stack of them and hidden-state averaging (RNN LM, seq2seq);
- attention.py: the seq2seq decoder's attention.
"""
