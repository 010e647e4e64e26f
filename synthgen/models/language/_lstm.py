"""The from-scratch LSTM language model ("MOSTLY_AI/LSTMFromScratch-3m"), with a stateful ``step``.

Same architecture as the reference engine's model (Embedding → Dropout → LSTM → Linear; ≈3.1M parameters
at the default size and a 5,000-token vocabulary), but a plain ``nn.Module`` whose ``step`` carries the
LSTM's (h, c) between calls: the reference engine re-runs the whole prefix for every new token, which made
its generation 15.8× slower (guide, NEXT-CAPABILITIES §1.2).
"""

from __future__ import annotations

import attrs
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["LSTMConfig", "LSTMLanguageModel", "LSTMState"]

# (h, c), each (num_layers, batch, hidden_size); None before the first token.
LSTMState = tuple[torch.Tensor, torch.Tensor] | None


@attrs.frozen
class LSTMConfig:
    """Size of an :class:`LSTMLanguageModel`.

    Parameters
    ----------
    vocab_size : int
        Number of tokens (the tokenizer's ``vocab_size``).
    embedding_size, hidden_size : int, default=256
    num_layers : int, default=1
    dropout : float, default=0.25
        Dropout on the embeddings (and between LSTM layers when there are several).
    """

    vocab_size: int
    embedding_size: int = 256
    hidden_size: int = 256
    num_layers: int = 1
    dropout: float = 0.25

    def to_dict(self) -> dict:
        return attrs.asdict(self)


class LSTMLanguageModel(nn.Module):
    """Embedding → Dropout → LSTM → Linear next-token model.

    Parameters
    ----------
    config : LSTMConfig

    Examples
    --------
    >>> model = LSTMLanguageModel(LSTMConfig(vocab_size=300, embedding_size=16, hidden_size=16)).eval()
    >>> logits, state = model.step(torch.tensor([[1, 7, 9]]), None)
    >>> logits.shape
    torch.Size([1, 3, 300])
    """

    def __init__(self, config: LSTMConfig):
        super().__init__()
        self.config = config
        self.vocab_size = config.vocab_size
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_size)
        self.dropout = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(
            config.embedding_size,
            config.hidden_size,
            num_layers=config.num_layers,
            batch_first=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        self.head = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, tokens: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Next-token logits ``(B, T, V)`` of right-padded ``tokens`` ``(B, T)`` (training).

        ``attention_mask`` is accepted for interface parity with the transformer wrapper; right padding
        cannot influence earlier positions of a left-to-right LSTM, so it is not needed.
        """
        return self.head(self.hidden_states(tokens))

    def hidden_states(self, tokens: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The LSTM's outputs ``(B, T, hidden_size)`` before the output layer :attr:`head` (training).

        Training applies ``head`` to the labelled positions only: padding and prompt positions then cost no
        output-layer work, which is most of a step's work at a large vocabulary.
        """
        out, _ = self.lstm(self.dropout(self.embedding(tokens)))
        return out

    def step(
        self, tokens: torch.Tensor, state: LSTMState, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, LSTMState]:
        """Feed ``tokens`` ``(B, T)`` after ``state``; return their logits ``(B, T, V)`` and the new state.

        Parameters
        ----------
        tokens : torch.Tensor
            Token ids, right-padded when ``mask`` is given.
        state : tuple of torch.Tensor or None
            The state returned by the previous call, or None to start a sequence.
        mask : torch.Tensor, optional
            ``(B, T)`` bool, True for real tokens, all of them before the padding. Padding leaves the state
            unchanged (a row with no real token keeps its state); the logits at padded positions are zeros.
        """
        x = self.dropout(self.embedding(tokens))
        if mask is None:
            out, state = self.lstm(x, state)
            return self.head(out), state
        lengths = mask.sum(1)
        batch, steps = tokens.shape
        if state is None:
            zeros = x.new_zeros(self.config.num_layers, batch, self.config.hidden_size)
            state = (zeros, zeros.clone())
        if steps == 1:
            # The decoding loop's case: run every row and keep the old state where the token is padding,
            # cheaper than packing.
            out, (h_new, c_new) = self.lstm(x, state)
            keep = mask[:, 0].view(1, batch, 1)
            return self.head(out) * mask.unsqueeze(-1), (
                torch.where(keep, h_new, state[0]),
                torch.where(keep, c_new, state[1]),
            )
        live = lengths > 0
        out = x.new_zeros(batch, steps, self.config.hidden_size)
        h, c = state[0].clone(), state[1].clone()
        if live.any():
            idx = live.nonzero().flatten()
            packed = pack_padded_sequence(x[idx], lengths[idx].cpu(), batch_first=True, enforce_sorted=False)
            packed_out, (h_new, c_new) = self.lstm(packed, (state[0][:, idx], state[1][:, idx]))
            out_live, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=steps)
            out[idx] = out_live
            h[:, idx], c[:, idx] = h_new, c_new
        return self.head(out) * mask.unsqueeze(-1), (h, c)

    @staticmethod
    def repeat_state(state: LSTMState, n: int) -> LSTMState:
        """Each row's state ``n`` times in a row (row ``i`` becomes rows ``i*n .. i*n+n-1``)."""
        if state is None:
            return None
        return state[0].repeat_interleave(n, dim=1), state[1].repeat_interleave(n, dim=1)
