[ -e .ascend-deploy/t/env ] && echo env ; [ -e .ascend-deploy/t/api-key ] && echo api_key; true
