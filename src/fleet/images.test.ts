import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ImageTable, parseImage } from './images.js';

test('parseImage splits registry, repository, tag and digest as Docker does', () => {
  assert.deepEqual(parseImage('683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1'),
    { registry: '683313688378.dkr.ecr.us-east-1.amazonaws.com', repository: 'sagemaker-xgboost', tag: '1.7-1', digest: undefined });
  assert.deepEqual(parseImage('berth/onnx:latest'), { registry: undefined, repository: 'berth/onnx', tag: 'latest', digest: undefined });
  assert.deepEqual(parseImage('localhost:5000/team/model@sha256:abc'), { registry: 'localhost:5000', repository: 'team/model', tag: undefined, digest: 'sha256:abc' });
  assert.deepEqual(parseImage('echo'), { registry: undefined, repository: 'echo', tag: undefined, digest: undefined });
});

test('the image table prefers the full URI, then repository:tag, then repository', () => {
  const table = new ImageTable({
    'sagemaker-xgboost': { command: ['any-tag'] },
    'sagemaker-xgboost:0.90-1': { command: ['old'] },
    '1.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1': { command: ['exact'] },
  });
  assert.equal(table.resolve('683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1')?.command[0], 'any-tag');
  assert.equal(table.resolve('683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:0.90-1')?.command[0], 'old');
  assert.equal(table.resolve('1.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1')?.command[0], 'exact');
  assert.equal(table.resolve('sagemaker-xgboost')?.key, 'sagemaker-xgboost');
  assert.equal(table.resolve('pytorch-inference:2.1'), undefined);
});
