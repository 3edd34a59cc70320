"""SavedModel export in TF Serving's layout."""

from tfrecs_llm.export.tf_serving import export_tf_serving

__all__ = ["export_tf_serving"]
