"""berth's stand-in for the parts of the SageMaker inference toolkit that handler modules import
(``errors``, ``content_types``, ``decoder``, ``encoder``), so an ``inference.py`` written for
AWS's images runs unchanged. It is last on sys.path: an installed sagemaker_inference wins."""
