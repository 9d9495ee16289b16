import { runGroup } from './plan';

runGroup(__filename);
