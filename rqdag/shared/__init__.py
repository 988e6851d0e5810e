"""The model, codec, key names, scripts and graph logic shared by coordinator and worker."""
