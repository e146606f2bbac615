"""The zoo models' scaffolding: their configurations (small sizes for the
tests) and the base class of the top-level models. Upstream keeps
them apart from the modeling code (configuration_gpt2.py,
configuration_llama.py); here one class serves both: the model code reads
``config.<field>`` as it does upstream."""

from types import SimpleNamespace

from torch import nn


class Config(SimpleNamespace):
    """A configuration with the fields of `defaults`; keyword arguments
    override them, an unknown field is an error."""

    defaults = {}

    def __init__(self, **overrides):
        unknown = set(overrides) - set(self.defaults)
        if unknown:
            raise TypeError("%s has no field %s" % (type(self).__name__, sorted(unknown)))
        super().__init__(**{**self.defaults, **overrides})


class GPT2Config(Config):
    defaults = dict(vocab_size=64, n_positions=32, n_embd=32, n_layer=2, n_head=4, n_inner=None,
                    activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0,
                    attn_pdrop=0.0, layer_norm_epsilon=1e-5, scale_attn_weights=True)


class LlamaConfig(Config):
    # rms_norm_eps: the model's RMSNorm epsilon (a model hyperparameter).
    defaults = dict(vocab_size=64, hidden_size=32, intermediate_size=88, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                    rms_norm_eps=1e-6, rope_theta=10000.0)


class PreTrainedModel(nn.Module):
    """Stands in for transformers' PreTrainedModel, the base of upstream's
    top-level models: it keeps the configuration (``super().__init__(config)``
    as upstream calls it); weights loading and generation are not needed."""

    def __init__(self, config):
        super().__init__()
        self.config = config
