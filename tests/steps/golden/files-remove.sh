rm -f .ascend-deploy/t/env .ascend-deploy/t/api-key
