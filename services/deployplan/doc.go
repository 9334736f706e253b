// Package deployplan decides how a CodeDeploy-style in-place deployment
// moves through a deployment group's hosts: how many may be taken offline at
// once, in which batches, and when the deployment is over. It is pure: no
// I/O, no clock, no logger. The deploy service folds per-host events into a
// status map and asks Next what to do; the same call answers a dry run.
//
// # Deployment configurations
//
// A Config sets the minimum number of healthy hosts, as CodeDeploy's
// MinimumHealthyHosts does for EC2/on-premises deployments. For n hosts:
//
//	HOST_COUNT m         minimum healthy m, m < n;         batch n-m
//	FLEET_PERCENT p      minimum healthy ceil(n*p/100);     batch n-minimum, at least 1
//	MOST_CONCURRENCY 1   minimum healthy n-1 (OneAtATime);  batch 1
//
// The predefined configurations are AllAtOnce (FLEET_PERCENT 0: every host at
// once), HalfAtATime (FLEET_PERCENT 50: at most half the hosts, rounded down,
// at a time) and OneAtATime (MOST_CONCURRENCY 1, which is what CodeDeploy's
// GetDeploymentConfig reports for CodeDeployDefault.OneAtATime).
//
// With 9 hosts, HOST_COUNT 6 deploys 3 at a time and FLEET_PERCENT 40 deploys 5
// at a time (minimum healthy ceil(3.6) = 4).
//
// # Health
//
// A host being deployed to is offline, and a host whose deployment failed
// stays unhealthy, so at any moment failed + in-progress hosts may not
// exceed the batch size. Next never starts a host that would break this.
// The deployment:
//
//   - succeeds when every host has ended and at least max(MinHealthy, 1)
//     succeeded (CodeDeploy: even with a minimum of 0, one host must succeed);
//   - fails as soon as success is out of reach (more than n-MinHealthy hosts
//     failed, or too few hosts are left to reach the minimum), or as soon as
//     hosts remain to deploy but failed hosts fill the whole batch size, so
//     deploying one more would take the healthy count below the minimum.
//
// The second failure rule is what makes OneAtATime fail on the first failed
// host but the last, and what makes FLEET_PERCENT 85 on 10 hosts fail on any
// failure but the last: both CodeDeploy's documented behaviour. When a
// deployment fails, hosts never started are to be recorded as Skipped.
package deployplan
