"""Notion databases as a front end: rows become LoRATrainings, results go back to the rows.

Every Notion request goes through `gateway.NotionGateway`, one throttled queue per token.
`sync` turns new rows into trainings, `writeback` mirrors a training's status into its
row, and `controller` runs both inside the operator; `lora_operator.local.notion` runs
them on one workstation.
"""
