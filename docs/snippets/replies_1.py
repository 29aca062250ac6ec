from airflow_provider_cascade.send import CascadeGuardrails, Suppression

guardrails = CascadeGuardrails(suppress=Suppression(opt_outs="cascade_default"))
